# Unit tests of the broker adapter's pure parts (no nats-server): the readers of PubAcks,
# consumer-create replies and hub config records.
dt_add_test(NAME test_broker_json SOURCES test_broker_json.c LABELS unit)
target_include_directories(test_broker_json PRIVATE ${CMAKE_SOURCE_DIR}/broker-adapter)
