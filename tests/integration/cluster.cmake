# A worker fleet on a three-node JetStream cluster (issue 8): each test starts its own cluster on
# loopback (tests/support/test_cluster.h) and creates its hub there with 3 replicas.
dt_add_test(NAME test_cluster_failover
  SOURCES cluster/test_cluster_failover.c cluster/cluster_work.c
  LABELS integration TIMEOUT 120 LIBS dt_worker_kit)
target_include_directories(test_cluster_failover PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/cluster)
