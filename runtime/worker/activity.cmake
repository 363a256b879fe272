# The activity pool of the worker (activity_int.h): fetches activity work items, runs the
# registered functions, publishes their results.
target_sources(durabletask PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/activity_ctx.c
  ${CMAKE_CURRENT_LIST_DIR}/activity_loop.c
  ${CMAKE_CURRENT_LIST_DIR}/activity_members.c
  ${CMAKE_CURRENT_LIST_DIR}/activity_names.c
  ${CMAKE_CURRENT_LIST_DIR}/activity_pool.c
  ${CMAKE_CURRENT_LIST_DIR}/activity_request.c
  ${CMAKE_CURRENT_LIST_DIR}/activity_result.c
  ${CMAKE_CURRENT_LIST_DIR}/activity_ticker.c)
