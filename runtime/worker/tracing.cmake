# The worker's tracing hooks (trace_int.h; the tracing itself is runtime/tracing).
target_sources(durabletask PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/trace_activity.c
  ${CMAKE_CURRENT_LIST_DIR}/trace_episode.c)
