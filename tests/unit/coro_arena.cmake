# Tests of the region allocator (runtime/common/arena.c, arena_pb.c) and the coroutines
# (runtime/engine/coro.c).
dt_add_test(NAME test_arena SOURCES test_arena.c LABELS unit)
dt_add_test(NAME test_coro SOURCES test_coro.c LABELS unit)
dt_add_test(NAME test_arena_pb SOURCES test_arena_pb.c LABELS unit)
