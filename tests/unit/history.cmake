# Tests of runtime/history: the SQLite store of a partition, on real files in temp directories.
dt_add_test(NAME test_store_open SOURCES test_store_open.c LABELS unit)
dt_add_test(NAME test_store_commit SOURCES test_store_commit.c LABELS unit)
dt_add_test(NAME test_store_query SOURCES test_store_query.c LABELS unit)
dt_add_test(NAME test_store_timers_outbox SOURCES test_store_timers_outbox.c LABELS unit)
dt_add_test(NAME test_store_episode SOURCES test_store_episode.c LABELS unit)
dt_add_test(NAME test_store_parked SOURCES test_store_parked.c LABELS unit)
dt_add_test(NAME test_store_log SOURCES test_store_log.c LABELS unit)
dt_add_test(NAME test_store_applied_prune SOURCES test_store_applied_prune.c LABELS unit)
dt_add_test(NAME test_store_migrate SOURCES test_store_migrate.c LABELS unit)
target_include_directories(test_store_migrate PRIVATE ${CMAKE_SOURCE_DIR}/runtime/engine)
dt_add_test(NAME test_store_crash SOURCES test_store_crash.c LABELS unit TIMEOUT 300)
# The worker's in-memory mirror of stored instance rows (runtime/worker/partition/rowcache.c),
# against a real engine: it stands in for a SQLite read, so it is tested with the store's tests.
dt_add_test(NAME test_rowcache SOURCES test_rowcache.c LABELS unit)
target_include_directories(test_rowcache PRIVATE ${CMAKE_SOURCE_DIR}/runtime/worker/partition
  ${CMAKE_SOURCE_DIR}/runtime/worker/query ${CMAKE_SOURCE_DIR}/runtime/worker/local
  ${CMAKE_SOURCE_DIR}/runtime/worker/base ${CMAKE_SOURCE_DIR}/runtime/worker/activity
  ${CMAKE_SOURCE_DIR}/runtime/worker/lease
  ${CMAKE_SOURCE_DIR}/runtime/engine ${CMAKE_SOURCE_DIR}/runtime/protocol)
