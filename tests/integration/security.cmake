# Connection security (issue 7): nats-servers configured and owned by each test (test_nats.h) for
# token, user/password, nkey, credentials-file, TLS and mutual-TLS authentication, with keys and
# certificates generated at test time; the worker's wait for a server that is not up yet; dtctl's
# security flags and DT_NATS_* variables.
add_library(dt_sec_kit STATIC security/sec_kit.c)
target_include_directories(dt_sec_kit PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/security)
target_compile_options(dt_sec_kit PRIVATE ${DT_WARNINGS})
target_compile_definitions(dt_sec_kit PRIVATE DT_JS_DIR="${CMAKE_SOURCE_DIR}/tests/js"
  SK_MAKE_TLS="${CMAKE_CURRENT_SOURCE_DIR}/security/make_tls.sh")
target_link_libraries(dt_sec_kit PUBLIC durabletask dt_test_support PkgConfig::CMOCKA)

dt_add_test(NAME test_conn_auth SOURCES security/test_conn_auth.c LABELS integration TIMEOUT 240
  LIBS dt_sec_kit)
dt_add_test(NAME test_conn_tls SOURCES security/test_conn_tls.c LABELS integration TIMEOUT 240
  LIBS dt_sec_kit)
dt_add_test(NAME test_conn_start SOURCES security/test_conn_start.c LABELS integration TIMEOUT 240
  LIBS dt_sec_kit)
dt_add_test(NAME test_conn_dtctl SOURCES security/test_conn_dtctl.c LABELS integration TIMEOUT 120
  LIBS dt_sec_kit)
target_compile_definitions(test_conn_dtctl PRIVATE DTCTL_PATH="$<TARGET_FILE:dtctl>")
add_dependencies(test_conn_dtctl dtctl)
# 600 connects each with nkey and credentials-file auth, none refused (nats.c 3.4.1 drops a
# signature beginning with 0x00; broker-adapter/nkey_sign.c).
dt_add_test(NAME test_conn_repeat SOURCES security/test_conn_repeat.c LABELS integration
  TIMEOUT 120 LIBS dt_sec_kit)
