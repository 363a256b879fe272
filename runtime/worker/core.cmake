# The worker core: assembly, partition pipeline, episodes, actions, outbox, ingress.
target_sources(durabletask PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/actions.c
  ${CMAKE_CURRENT_LIST_DIR}/commit.c
  ${CMAKE_CURRENT_LIST_DIR}/dead_letter.c
  ${CMAKE_CURRENT_LIST_DIR}/connect.c
  ${CMAKE_CURRENT_LIST_DIR}/episode.c
  ${CMAKE_CURRENT_LIST_DIR}/episode_park.c
  ${CMAKE_CURRENT_LIST_DIR}/episode_remote.c
  ${CMAKE_CURRENT_LIST_DIR}/episode_terminate.c
  ${CMAKE_CURRENT_LIST_DIR}/episode_rewind.c
  ${CMAKE_CURRENT_LIST_DIR}/inbox.c
  ${CMAKE_CURRENT_LIST_DIR}/ingress.c
  ${CMAKE_CURRENT_LIST_DIR}/ingress_route.c
  ${CMAKE_CURRENT_LIST_DIR}/local_act.c
  ${CMAKE_CURRENT_LIST_DIR}/log_stderr.c
  ${CMAKE_CURRENT_LIST_DIR}/outbox.c
  ${CMAKE_CURRENT_LIST_DIR}/partition.c
  ${CMAKE_CURRENT_LIST_DIR}/retention.c
  ${CMAKE_CURRENT_LIST_DIR}/rowcache.c
  ${CMAKE_CURRENT_LIST_DIR}/worker.c)
