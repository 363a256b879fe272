# Tests of runtime/tracing: trace context, span JSON, the exporter's accounting.
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
dt_add_test(NAME test_tracing SOURCES test_tracing.c LABELS unit LIBS PkgConfig::JANSSON)
