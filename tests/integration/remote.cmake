# Orchestrations and activities run by SDK workers (runtime/remote, issue 12): a fake SDK worker
# in C (remote/fake_sdk.c) speaks the protocol's packed messages through remote_int.h.
dt_add_test(NAME test_remote_e2e SOURCES remote/test_remote_e2e.c remote/fake_sdk.c
  LABELS integration TIMEOUT 300 LIBS dt_worker_kit)
target_include_directories(test_remote_e2e PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/remote)
# Entities run by an SDK worker (remote_entity.c), with an SDK worker written in C in the test.
dt_add_test(NAME test_remote_entity SOURCES remote/test_remote_entity.c
  LABELS integration tsan TIMEOUT 300 LIBS dt_worker_kit)
# durabletask-js orchestrations and activities (tests/js/sdk_worker.mjs) through dt-sidecar, next
# to a C worker serving a C activity on the same hub.
if(TARGET dt_sidecar)
  dt_add_test(NAME test_remote_sdk SOURCES remote/test_remote_sdk.c LABELS integration tsan
    TIMEOUT 300 LIBS dt_sidecar_test_kit dt_worker_kit)
endif()
