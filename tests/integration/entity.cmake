# Durable entities end to end (real nats-server, real SQLite files, worker processes).
add_library(dt_entity_funcs STATIC entity/entity_funcs.c)
target_compile_options(dt_entity_funcs PRIVATE ${DT_WARNINGS})
target_link_libraries(dt_entity_funcs PUBLIC durabletask)
target_include_directories(dt_entity_funcs PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/entity)
add_executable(entity_worker entity/entity_worker.c)
target_compile_options(entity_worker PRIVATE ${DT_WARNINGS})
target_link_libraries(entity_worker PRIVATE durabletask dt_entity_funcs)
dt_add_test(NAME test_entity_signals SOURCES entity/test_entity_signals.c LABELS integration
  TIMEOUT 300 LIBS dt_worker_kit dt_entity_funcs)
target_compile_definitions(test_entity_signals PRIVATE
  ENTITY_WORKER_PATH="$<TARGET_FILE:entity_worker>")
add_dependencies(test_entity_signals entity_worker)
dt_add_test(NAME test_entity_orch SOURCES entity/test_entity_orch.c LABELS integration
  TIMEOUT 300 LIBS dt_worker_kit dt_entity_funcs)
