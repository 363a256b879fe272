# Partition leases and fleet membership (leases_int.h): the lease keeper and the pure placement.
target_sources(durabletask PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/leases.c
  ${CMAKE_CURRENT_SOURCE_DIR}/leases_exclude.c
  ${CMAKE_CURRENT_SOURCE_DIR}/leases_fleet.c
  ${CMAKE_CURRENT_SOURCE_DIR}/leases_placement.c)
