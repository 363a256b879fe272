# Distributed tracing end to end: an in-test OTLP receiver (libmicrohttpd) and two trace_worker
# processes with different service names.
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
add_executable(trace_worker tracing/trace_worker.c)
target_compile_options(trace_worker PRIVATE ${DT_WARNINGS})
target_link_libraries(trace_worker PRIVATE durabletask)
dt_add_test(NAME test_tracing_e2e SOURCES tracing/test_tracing_e2e.c LABELS integration
  TIMEOUT 180 LIBS dt_worker_kit PkgConfig::MHD PkgConfig::JANSSON)
target_compile_definitions(test_tracing_e2e PRIVATE TRACE_WORKER_PATH="$<TARGET_FILE:trace_worker>")
add_dependencies(test_tracing_e2e trace_worker)
