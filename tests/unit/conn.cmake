# The broker adapter's connection options without a server: URL lists, redaction, security checks.
dt_add_test(NAME test_conn_options SOURCES test_conn_options.c LABELS unit)
target_include_directories(test_conn_options PRIVATE ${CMAKE_SOURCE_DIR}/broker-adapter)
# The nkey signatures the adapter hands nats.c (none begins with 0x00; broker-adapter/nkey_sign.c).
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
dt_add_test(NAME test_conn_sign SOURCES test_conn_sign.c LABELS unit LIBS OpenSSL::Crypto)
target_include_directories(test_conn_sign PRIVATE ${CMAKE_SOURCE_DIR}/broker-adapter)
