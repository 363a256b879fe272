# Integration tests of the activity pool (runtime/worker/activity/activity_*.c), against the
# nats-server that scripts/test starts (DT_TEST_NATS_URL). Relative sources resolve against
# tests/integration (see broker.cmake).
dt_add_test(NAME test_activity_basic SOURCES test_activity_basic.c LABELS integration)
dt_add_test(NAME test_activity_errors SOURCES test_activity_errors.c LABELS integration)
dt_add_test(NAME test_activity_stop SOURCES test_activity_stop.c LABELS integration)
dt_add_test(NAME test_activity_parallel SOURCES test_activity_parallel.c LABELS integration)
