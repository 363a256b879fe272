# Integration tests of the broker adapter (broker-adapter/), against the nats-server that
# scripts/test starts (DT_TEST_NATS_URL). dt_add_test runs in tests/CMakeLists.txt's function
# scope but add_executable() resolves relative sources against this directory's
# CMAKE_CURRENT_SOURCE_DIR (tests/integration), hence the plain file names.
dt_add_test(NAME test_broker_hub SOURCES test_broker_hub.c LABELS integration)
dt_add_test(NAME test_broker_publish SOURCES test_broker_publish.c LABELS integration)
dt_add_test(NAME test_broker_consume SOURCES test_broker_consume.c LABELS integration)
dt_add_test(NAME test_broker_kv SOURCES test_broker_kv.c LABELS integration)
dt_add_test(NAME test_broker_kv_key SOURCES test_broker_kv_key.c LABELS integration)
dt_add_test(NAME test_broker_core SOURCES test_broker_core.c LABELS integration)
dt_add_test(NAME test_broker_log SOURCES test_broker_log.c LABELS integration)
dt_add_test(NAME test_broker_pubroute SOURCES test_broker_pubroute.c LABELS integration)
dt_add_test(NAME test_broker_reconnect SOURCES test_broker_reconnect.c LABELS integration TIMEOUT 180)
# The partition log (runtime/journal): rebuilds compared row by row with the store tests' helpers.
dt_add_test(NAME test_journal SOURCES test_journal.c LABELS integration TIMEOUT 300)
target_include_directories(test_journal PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit
  ${CMAKE_SOURCE_DIR}/broker-adapter/include)
