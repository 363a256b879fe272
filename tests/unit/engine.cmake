# Replay engine tests: the in-process harness (engine/harness.c) drives the engine with fakes.
add_library(dt_engine_harness STATIC engine/harness.c)
target_include_directories(dt_engine_harness PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/engine
  ${CMAKE_SOURCE_DIR}/runtime/engine ${CMAKE_SOURCE_DIR}/runtime/common)
target_compile_options(dt_engine_harness PRIVATE ${DT_WARNINGS})
target_link_libraries(dt_engine_harness PUBLIC durabletask)

foreach(t test_engine_basics test_engine_events test_engine_flow test_engine_determinism
    test_engine_memory test_engine_history test_engine_entities)
  dt_add_test(NAME ${t} SOURCES engine/${t}.c LABELS unit LIBS dt_engine_harness)
endforeach()
