# Integration tests of the samples (samples/), against the nats-server that scripts/test starts
# (DT_TEST_NATS_URL): one executable per sample, each with an in-process worker running every
# sample (samples/samples_kit.h), and the fleet test of the built dt-samples-worker and dt-samples
# programs. Relative sources resolve against tests/integration (see broker.cmake).
if(TARGET dt_samples)
  add_library(dt_samples_kit STATIC samples/samples_kit.c)
  target_include_directories(dt_samples_kit PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/samples)
  target_compile_options(dt_samples_kit PRIVATE ${DT_WARNINGS})
  target_link_libraries(dt_samples_kit PUBLIC dt_samples durabletask dt_test_support
    PkgConfig::CMOCKA)

  foreach(t chaining fan_out human_interaction monitor saga sub_orchestrations event_driven
      entities)
    dt_add_test(NAME test_sample_${t} SOURCES samples/test_sample_${t}.c LABELS integration
      LIBS dt_samples_kit)
  endforeach()

  # Result subjects with a plain subscriber: delivered once, without stalling the partition.
  dt_add_test(NAME test_sample_result_once SOURCES samples/test_sample_result_once.c
    LABELS integration LIBS dt_samples_kit)

  # The programs scripts/run uses: two worker processes and the runner, end to end.
  add_test(NAME test_samples_fleet COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/samples/test_samples_fleet.sh
    $<TARGET_FILE:dt-samples-worker> $<TARGET_FILE:dt-samples> $<TARGET_FILE:dtctl>)
  set_tests_properties(test_samples_fleet PROPERTIES TIMEOUT 180 LABELS integration)
endif()
