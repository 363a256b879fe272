# test_headers: compiles each public header alone, as C11 and as C++17, with warnings as errors:
# a header must include what it uses, keep to standard C (no bare _Noreturn or attributes: see
# durabletask/defs.h) and give its functions C linkage in C++. Each header is included twice
# (its guard). Run by ctest (tests/install/CMakeLists.txt):
#   cmake -DCC=cc -DCXX=c++ -DHEADER_DIR=<dir with durabletask/> -DGEN_DIR=<dir with version.h's
#         durabletask/> -DOUT=<scratch dir> -P check_headers.cmake
foreach(v CC HEADER_DIR GEN_DIR OUT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "check_headers.cmake: -D${v}= is required")
  endif()
endforeach()

file(GLOB headers RELATIVE ${HEADER_DIR} ${HEADER_DIR}/durabletask/*.h)
file(GLOB generated RELATIVE ${GEN_DIR} ${GEN_DIR}/durabletask/*.h)
list(APPEND headers ${generated})
list(SORT headers)
if(NOT headers)
  message(FATAL_ERROR "no headers under ${HEADER_DIR}/durabletask")
endif()
file(MAKE_DIRECTORY ${OUT})

set(langs "c|${CC}|-std=c11")
if(CXX)
  list(APPEND langs "c++|${CXX}|-std=c++17")
else()
  message(WARNING "no C++ compiler: headers checked as C only")
endif()

set(failed "")
foreach(h ${headers})
  string(MAKE_C_IDENTIFIER ${h} id)
  set(src ${OUT}/${id}.h.check)
  # The typedef keeps a TU of a macro-only header from being empty (-Wpedantic).
  file(WRITE ${src} "#include <${h}>\n#include <${h}>\ntypedef int dt_header_check_t;\n")
  foreach(l ${langs})
    string(REPLACE "|" ";" l "${l}")
    list(GET l 0 lang)
    list(GET l 1 compiler)
    list(GET l 2 std)
    execute_process(
      COMMAND ${compiler} -x ${lang} ${std} -fsyntax-only -Wall -Wextra -Wpedantic -Werror
              -Wshadow -Wundef -I${HEADER_DIR} -I${GEN_DIR} ${src}
      RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    if(rc EQUAL 0)
      message(STATUS "ok    ${lang} ${std} ${h}")
    else()
      message(STATUS "FAIL  ${lang} ${std} ${h}\n${out}")
      list(APPEND failed "${lang}:${h}")
    endif()
  endforeach()
endforeach()
if(failed)
  message(FATAL_ERROR "headers that do not compile alone: ${failed}")
endif()
