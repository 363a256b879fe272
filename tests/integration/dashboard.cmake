# The web dashboard (issue 9), against the nats-server of scripts/test (DT_TEST_NATS_URL): its
# HTTP API in C (cmocka) and the page in a real browser (tests/js/dashboard_browser.mjs:
# playwright-core driving Debian's /usr/bin/chromium headless). Both run the dashboard and a
# worker in the test process (dashboard/dash_kit.c).
add_library(dt_dash_kit STATIC dashboard/dash_kit.c)
target_include_directories(dt_dash_kit PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/dashboard
  PRIVATE ${CMAKE_SOURCE_DIR}/runtime ${CMAKE_SOURCE_DIR}/runtime/common)
target_compile_options(dt_dash_kit PRIVATE ${DT_WARNINGS} -Wno-missing-prototypes)
target_link_libraries(dt_dash_kit PUBLIC dt_dashboard dt_worker_kit)

dt_add_test(NAME test_dashboard_api SOURCES dashboard/test_dashboard_api.c LABELS integration
  TIMEOUT 180 LIBS dt_dash_kit)
# The page in a real browser; its screenshots of each view go to the build tree, or to
# $DT_SCREENSHOT_DIR (DT_SCREENSHOT_DIR=$PWD/docs/img refreshes those README.md and
# docs/operations.md show).
dt_add_test(NAME test_dashboard_browser SOURCES dashboard/test_dashboard_browser.c
  LABELS integration TIMEOUT 240 LIBS dt_dash_kit)
target_compile_definitions(test_dashboard_browser PRIVATE DT_JS_DIR="${CMAKE_SOURCE_DIR}/tests/js"
  DT_IMG_DIR="${CMAKE_CURRENT_BINARY_DIR}/dashboard-img")
