# The broker adapter's connection options without a server: URL lists, redaction, security checks.
dt_add_test(NAME test_conn_options SOURCES test_conn_options.c LABELS unit)
target_include_directories(test_conn_options PRIVATE ${CMAKE_SOURCE_DIR}/broker-adapter)
