# Durable entities in the worker: the registry of entity functions, the entity's share of a
# partition batch, and the ingress route for signals (runtime/entity holds the engine).
target_sources(durabletask PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/entity_registry.c
  ${CMAKE_CURRENT_LIST_DIR}/entity_episode.c
  ${CMAKE_CURRENT_LIST_DIR}/entity_actions.c
  ${CMAKE_CURRENT_LIST_DIR}/ingress_signal.c)
