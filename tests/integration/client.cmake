# Integration tests of the client API, the partition query service and dtctl, against the
# nats-server that scripts/test starts (DT_TEST_NATS_URL). Relative sources resolve against
# tests/integration (see broker.cmake).
dt_add_test(NAME test_client_schedule SOURCES test_client_schedule.c LABELS integration)
dt_add_test(NAME test_client_signal SOURCES test_client_signal.c LABELS integration)
dt_add_test(NAME test_client_status SOURCES test_client_status.c LABELS integration)
dt_add_test(NAME test_client_reuse SOURCES test_client_reuse.c LABELS integration)
# Shared waits: many threads on one client, destroy while waiting, and a restart of a
# nats-server of the test's own.
dt_add_test(NAME test_client_waits SOURCES test_client_waits.c LABELS integration tsan)
# Its wire spy subscribes to ">" on the shared server: while it listens, a JetStream publish to a
# subject no stream captures finds a responder that never answers and times out instead of
# getting "no responders" (seen: test_broker_hub's test_delete). It runs alone.
set_tests_properties(test_client_reuse PROPERTIES RUN_SERIAL TRUE)
dt_add_test(NAME test_query_service SOURCES test_query_service.c LABELS integration)
# dtctl end to end: a shell script driving the built binary (exit codes, text and JSON output).
add_test(NAME test_dtctl COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_dtctl.sh $<TARGET_FILE:dtctl>)
set_tests_properties(test_dtctl PROPERTIES TIMEOUT 120 LABELS integration)
# dtctl's query commands against query services run by the test process itself.
dt_add_test(NAME test_dtctl_query SOURCES test_dtctl_query.c LABELS integration)
target_compile_definitions(test_dtctl_query PRIVATE DTCTL_PATH="$<TARGET_FILE:dtctl>")
add_dependencies(test_dtctl_query dtctl)
