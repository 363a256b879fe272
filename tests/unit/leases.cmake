# Pure placement of partitions on workers (runtime/worker/lease/leases_placement.c): no broker.
dt_add_test(NAME test_leases_placement SOURCES test_leases_placement.c LABELS unit)
