# Integration tests of partition leases and fleet membership (runtime/worker/lease/leases.c),
# against the nats-server that scripts/test starts (DT_TEST_NATS_URL). Relative sources resolve against
# tests/integration (see broker.cmake).
dt_add_test(NAME test_leases_basic SOURCES test_leases_basic.c LABELS integration TIMEOUT 180)
dt_add_test(NAME test_leases_failover SOURCES test_leases_failover.c LABELS integration TIMEOUT 180)
