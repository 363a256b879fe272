# The query service of a partition (query_int.h): list, history and purge answered from the
# partition's SQLite store over NATS request/reply.
target_sources(durabletask PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/query.c
  ${CMAKE_CURRENT_LIST_DIR}/query_ops.c
  ${CMAKE_CURRENT_LIST_DIR}/purge.c
  ${CMAKE_CURRENT_LIST_DIR}/query_payload.c)
