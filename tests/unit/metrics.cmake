# The metrics registry and its text exposition (runtime/metrics), read back by the strict
# exposition reader of tests/support/prom_text.c (also used by the integration tests).
add_library(dt_prom_text STATIC ${CMAKE_SOURCE_DIR}/tests/support/prom_text.c)
target_include_directories(dt_prom_text PUBLIC ${CMAKE_SOURCE_DIR}/tests/support)
target_compile_options(dt_prom_text PRIVATE ${DT_WARNINGS})
target_link_libraries(dt_prom_text PUBLIC m)
dt_add_test(NAME test_metrics SOURCES test_metrics.c LABELS unit LIBS dt_prom_text)
target_include_directories(test_metrics PRIVATE ${CMAKE_SOURCE_DIR}/runtime/metrics)
