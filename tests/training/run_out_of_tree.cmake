# Script run by CTest: install modkit -> build sdk/examples/training_loop with find_package(modkit) -> run it on the installed plugins.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}${err}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --install ${MODKIT_BINARY_DIR} --prefix ${prefix})
run(${CMAKE_COMMAND} -S ${MODKIT_EXAMPLE_DIR} -B ${WORK_DIR}/build -DCMAKE_PREFIX_PATH=${prefix}
    "-DCMAKE_CXX_FLAGS=${EXAMPLE_CXX_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${EXAMPLE_LINKER_FLAGS}")
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)

# No --plugin-dir: the host finds the plugins in the install default, <prefix>/lib/modkit/plugins.
run(${CMAKE_COMMAND} -E env --unset=MODKIT_PLUGIN_PATH ${WORK_DIR}/build/training_loop --steps 130 --every 20)
if(NOT last_output MATCHES "evaluation loss: [0-9.]+ before training, [0-9.]+ after")
  message(FATAL_ERROR "the example did not finish its training run:\n${last_output}")
endif()
message(STATUS "training_loop built against the installed package and ran:\n${last_output}")
