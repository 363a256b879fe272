# Metrics (issue 9): /metrics of a worker scraped over HTTP and checked line by line; the KEDA
# contract (the lag nats-server's /jsz reports for the documented stream and consumer names).
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
if(NOT TARGET dt_prom_text)
  add_library(dt_prom_text STATIC ${CMAKE_SOURCE_DIR}/tests/support/prom_text.c)
  target_include_directories(dt_prom_text PUBLIC ${CMAKE_SOURCE_DIR}/tests/support)
  target_link_libraries(dt_prom_text PUBLIC m)
endif()
dt_add_test(NAME test_metrics_scrape SOURCES metrics/test_metrics_scrape.c LABELS integration
  TIMEOUT 180 LIBS dt_worker_kit dt_prom_text PkgConfig::CURL)
dt_add_test(NAME test_keda_backlog SOURCES metrics/test_keda_backlog.c LABELS integration
  TIMEOUT 120 LIBS dt_worker_kit dt_prom_text PkgConfig::CURL PkgConfig::JANSSON)
