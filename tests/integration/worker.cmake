# End-to-end worker tests (real nats-server, real SQLite files).
add_library(dt_worker_kit STATIC worker/worker_kit.c)
target_include_directories(dt_worker_kit PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/worker
  ${CMAKE_SOURCE_DIR}/runtime/common ${CMAKE_SOURCE_DIR}/runtime/protocol)
target_compile_options(dt_worker_kit PRIVATE ${DT_WARNINGS})
target_link_libraries(dt_worker_kit PUBLIC durabletask dt_test_support PkgConfig::CMOCKA)

dt_add_test(NAME test_worker_e2e SOURCES worker/test_worker_e2e.c LABELS integration tsan
  TIMEOUT 300 LIBS dt_worker_kit)
dt_add_test(NAME test_worker_versions SOURCES worker/test_worker_versions.c LABELS integration
  TIMEOUT 300 LIBS dt_worker_kit)

# The chaos test: its own nats-server (restarted mid-run) and three chaos_worker processes.
add_executable(chaos_worker chaos/chaos_worker.c)
target_compile_options(chaos_worker PRIVATE ${DT_WARNINGS})
target_link_libraries(chaos_worker PRIVATE durabletask)
dt_add_test(NAME test_chaos SOURCES chaos/test_chaos.c LABELS integration TIMEOUT 400
  LIBS dt_worker_kit)
target_compile_definitions(test_chaos PRIVATE CHAOS_WORKER_PATH="$<TARGET_FILE:chaos_worker>")
add_dependencies(test_chaos chaos_worker)

# The C client API end to end against an in-process worker.
dt_add_test(NAME test_client_e2e SOURCES worker/test_client_e2e.c LABELS integration
  TIMEOUT 120 LIBS dt_worker_kit)
# Two and three in-process workers sharing a hub; graceful stop and take-over.
dt_add_test(NAME test_multi_worker SOURCES worker/test_multi_worker.c LABELS integration
  TIMEOUT 120 LIBS dt_worker_kit)
# Publish-to-start and raise from a second client, Node.js (tests/js, npm package nats).
dt_add_test(NAME test_publish_node SOURCES worker/test_publish_node.c LABELS integration
  TIMEOUT 120 LIBS dt_worker_kit)
target_compile_definitions(test_publish_node PRIVATE DT_JS_DIR="${CMAKE_SOURCE_DIR}/tests/js")

# A worker process killed (SIGKILL) between an outbox's commit and the deletion of its published
# rows; a second process takes over and must finish everything exactly once.
add_executable(outbox_crash_worker worker/outbox_crash_worker.c)
target_compile_options(outbox_crash_worker PRIVATE ${DT_WARNINGS})
target_link_libraries(outbox_crash_worker PRIVATE durabletask)
dt_add_test(NAME test_outbox_crash SOURCES worker/test_outbox_crash.c LABELS integration
  TIMEOUT 200 LIBS dt_worker_kit)
target_compile_definitions(test_outbox_crash PRIVATE
  OUTBOX_CRASH_WORKER_PATH="$<TARGET_FILE:outbox_crash_worker>")
add_dependencies(test_outbox_crash outbox_crash_worker)
# Events that overtake their instance's start, and events raised across continue-as-new.
dt_add_test(NAME test_event_order SOURCES worker/test_event_order.c LABELS integration
  TIMEOUT 180 LIBS dt_worker_kit)
target_link_libraries(test_event_order PRIVATE PkgConfig::SQLITE3)
# Payloads at and over the hub's message limit never freeze a partition.
dt_add_test(NAME test_oversize SOURCES worker/test_oversize.c LABELS integration
  TIMEOUT 180 LIBS dt_worker_kit)
# Bad ingress requests, reuse policies, routed messages over the limit, misrouted messages.
dt_add_test(NAME test_ingress_errors SOURCES worker/test_ingress_errors.c LABELS integration
  TIMEOUT 180 LIBS dt_worker_kit)
# Recursive terminate through completed children to their fire-and-forget work.
dt_add_test(NAME test_terminate_tree SOURCES worker/test_terminate_tree.c LABELS integration
  TIMEOUT 120 LIBS dt_worker_kit)
# Calls to missing activities and orchestrators under a retry policy (one non-retriable attempt);
# children without an ID across continue-as-new.
dt_add_test(NAME test_worker_calls SOURCES worker/test_worker_calls.c LABELS integration
  TIMEOUT 180 LIBS dt_worker_kit)
# Partition stores that do not open: handed to another worker; a missing store is not recreated.
dt_add_test(NAME test_partition_stores SOURCES worker/test_partition_stores.c LABELS integration
  TIMEOUT 180 LIBS dt_worker_kit)
target_link_libraries(test_partition_stores PRIVATE PkgConfig::SQLITE3)
target_include_directories(test_partition_stores PRIVATE ${CMAKE_SOURCE_DIR}/runtime/worker/lease)
# A stale owner (stopped between its lease check and its log append) cannot commit.
dt_add_test(NAME test_stale_owner SOURCES chaos/test_stale_owner.c LABELS integration TIMEOUT 180)
target_compile_definitions(test_stale_owner PRIVATE CHAOS_WORKER_PATH="$<TARGET_FILE:chaos_worker>")
target_include_directories(test_stale_owner PRIVATE ${CMAKE_SOURCE_DIR}/broker-adapter/include)
add_dependencies(test_stale_owner chaos_worker)
# Activity results carried together in one OrchestrationBatch message, and batches published by
# hand (malformed and misrouted members, a repeated batch).
dt_add_test(NAME test_result_batch SOURCES worker/test_result_batch.c LABELS integration
  TIMEOUT 200 LIBS dt_worker_kit)
# Activities run in the process of the partition that scheduled them: in-process when a thread
# is free, through the task queue otherwise, when turned off, for names served elsewhere, and
# after the owner stopped mid-run.
dt_add_test(NAME test_local_activities SOURCES worker/test_local_activities.c LABELS integration tsan
  TIMEOUT 200 LIBS dt_worker_kit)
# The hub's retention policy applied by the workers: finished instances purged by status and age.
dt_add_test(NAME test_retention SOURCES worker/test_retention.c LABELS integration TIMEOUT 120
  LIBS dt_worker_kit)
# Rewind of failed instances: activities, retry chains, fan-outs and sub-orchestrations run
# again; refusals; a repeated request; the rewritten history rebuilt from the partition log.
dt_add_test(NAME test_rewind SOURCES worker/test_rewind.c LABELS integration tsan TIMEOUT 200
  LIBS dt_worker_kit)
# Status records of one instance published again after a nats-server restart by the partition's
# next owner: the newest one wins.
dt_add_test(NAME test_status_relist SOURCES worker/test_status_relist.c LABELS integration
  TIMEOUT 120)
target_link_libraries(test_status_relist PRIVATE PkgConfig::SQLITE3)
target_include_directories(test_status_relist PRIVATE ${CMAKE_SOURCE_DIR}/broker-adapter/include
  ${CMAKE_SOURCE_DIR}/runtime/protocol)
