# dt-sidecar (runtime/sidecar): its gRPC transport and its services, driven by real Node.js gRPC
# clients from tests/js (@grpc/grpc-js, @microsoft/durabletask-js).
add_library(dt_sidecar_test_node STATIC sidecar/sidecar_node.c)
target_compile_options(dt_sidecar_test_node PRIVATE ${DT_WARNINGS} -Wno-missing-prototypes)
target_include_directories(dt_sidecar_test_node PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/sidecar)
target_link_libraries(dt_sidecar_test_node PUBLIC PkgConfig::CMOCKA)
target_compile_definitions(dt_sidecar_test_node PRIVATE DT_JS_DIR="${CMAKE_SOURCE_DIR}/tests/js")
# A hub with its client and an in-process dt-sidecar (sidecar_kit.h), for the tests that run one.
add_library(dt_sidecar_test_kit STATIC sidecar/sidecar_kit.c)
target_compile_options(dt_sidecar_test_kit PRIVATE ${DT_WARNINGS} -Wno-missing-prototypes)
target_include_directories(dt_sidecar_test_kit PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/sidecar)
target_link_libraries(dt_sidecar_test_kit PUBLIC dt_sidecar dt_sidecar_test_node)

dt_add_test(NAME test_sidecar_grpc SOURCES sidecar/test_sidecar_grpc.c LABELS integration
  LIBS dt_grpc dt_sidecar_test_node)
# Client RPCs through @microsoft/durabletask-js against C orchestrations (tests/js/sidecar_client.mjs).
dt_add_test(NAME test_sidecar_client SOURCES sidecar/test_sidecar_client.c LABELS integration
  TIMEOUT 240 LIBS dt_sidecar_test_kit)
# Orchestrations written with durabletask-js run by its worker through the sidecar, next to C code
# on the same hub (tests/js/sidecar_sdk.mjs).
dt_add_test(NAME test_sidecar_sdk SOURCES sidecar/test_sidecar_sdk.c LABELS integration
  TIMEOUT 300 LIBS dt_sidecar_test_kit)
# Durable entities through the sidecar: the entity client RPCs, entities written with
# durabletask-js run by its worker, called from JS and C orchestrations (tests/js/sidecar_entity.mjs).
dt_add_test(NAME test_sidecar_entity SOURCES sidecar/test_sidecar_entity.c LABELS integration
  TIMEOUT 300 LIBS dt_sidecar_test_kit)
