# runtime/remote's pure conversions (protocol requests and responses <-> the engine's contract).
dt_add_test(NAME test_remote_convert SOURCES test_remote_convert.c LABELS unit)
target_include_directories(test_remote_convert PRIVATE ${CMAKE_SOURCE_DIR}/runtime/engine
  ${CMAKE_SOURCE_DIR}/runtime/protocol)
# runtime/remote's core (queues, the in-flight bound, matching, abandon, timeouts), no broker.
dt_add_test(NAME test_remote_core SOURCES test_remote_core.c LABELS unit)
target_include_directories(test_remote_core PRIVATE ${CMAKE_SOURCE_DIR}/runtime/engine
  ${CMAKE_SOURCE_DIR}/runtime/protocol ${CMAKE_SOURCE_DIR}/runtime/remote)
# runtime/remote's entity conversions (SendEntityMessage actions, the unlocks an ending execution
# owes).
dt_add_test(NAME test_remote_convert_entity SOURCES test_remote_convert_entity.c LABELS unit)
target_include_directories(test_remote_convert_entity PRIVATE ${CMAKE_SOURCE_DIR}/runtime/engine
  ${CMAKE_SOURCE_DIR}/runtime/protocol)
