# Integration tests of the client API, the partition query service and dtctl, against the
# nats-server that scripts/test starts (DT_TEST_NATS_URL). Relative sources resolve against
# tests/integration (see broker.cmake).
dt_add_test(NAME test_client_schedule SOURCES test_client_schedule.c LABELS integration)
dt_add_test(NAME test_client_signal SOURCES test_client_signal.c LABELS integration)
dt_add_test(NAME test_client_status SOURCES test_client_status.c LABELS integration)
dt_add_test(NAME test_query_service SOURCES test_query_service.c LABELS integration)
