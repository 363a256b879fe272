# runtime/remote's pure conversions (protocol requests and responses <-> the engine's contract).
dt_add_test(NAME test_remote_convert SOURCES test_remote_convert.c LABELS unit)
target_include_directories(test_remote_convert PRIVATE ${CMAKE_SOURCE_DIR}/runtime/engine
  ${CMAKE_SOURCE_DIR}/runtime/protocol)
