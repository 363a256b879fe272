# Tests of runtime/entity: entity IDs and the entity engine (pure logic).
dt_add_test(NAME test_entity SOURCES test_entity.c LABELS unit)
