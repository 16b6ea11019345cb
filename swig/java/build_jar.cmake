# Compiles every .java file under SOURCE_DIRS (a ;-list, may include SWIG's
# generated directory, whose file names are only known after SWIG ran) and
# packs the classes into JAR_FILE.
#   cmake -DJAVAC=... -DJAR=... -DSOURCE_DIRS=a;b -DCLASSES_DIR=... -DJAR_FILE=...
#         [-DCLASSPATH=...] -P build_jar.cmake
foreach(var JAVAC JAR SOURCE_DIRS CLASSES_DIR JAR_FILE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "build_jar.cmake: ${var} is not set")
  endif()
endforeach()

set(sources)
foreach(dir ${SOURCE_DIRS})
  file(GLOB_RECURSE found "${dir}/*.java")
  list(APPEND sources ${found})
endforeach()
if(NOT sources)
  message(FATAL_ERROR "build_jar.cmake: no .java files in ${SOURCE_DIRS}")
endif()

file(REMOVE_RECURSE "${CLASSES_DIR}")
file(MAKE_DIRECTORY "${CLASSES_DIR}")
set(cp_args)
if(CLASSPATH)
  set(cp_args -classpath "${CLASSPATH}")
endif()
execute_process(
  COMMAND "${JAVAC}" -encoding UTF-8 --release 17 -Xlint:all -Xlint:-options -Werror
          -d "${CLASSES_DIR}" ${cp_args} ${sources}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "javac failed (${rc})")
endif()
execute_process(COMMAND "${JAR}" cf "${JAR_FILE}" -C "${CLASSES_DIR}" . RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "jar failed (${rc})")
endif()
