# Tests of runtime/history: the SQLite store of a partition, on real files in temp directories.
dt_add_test(NAME test_store_open SOURCES test_store_open.c LABELS unit)
dt_add_test(NAME test_store_commit SOURCES test_store_commit.c LABELS unit)
dt_add_test(NAME test_store_query SOURCES test_store_query.c LABELS unit)
dt_add_test(NAME test_store_timers_outbox SOURCES test_store_timers_outbox.c LABELS unit)
dt_add_test(NAME test_store_crash SOURCES test_store_crash.c LABELS unit TIMEOUT 300)
