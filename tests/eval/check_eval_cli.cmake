# `focaldet eval` end to end on the "plain" fixture: the 12 summary lines exactly as
# pycocotools prints them, the metrics json's keys, and exit code 2 with the entry named for a
# malformed results file. Run by CTest: cmake -DFOCALDET=... -DSOURCE_DIR=... -DWORK_DIR=... -P
set(fixtures ${SOURCE_DIR}/tests/eval/fixtures)
file(MAKE_DIRECTORY ${WORK_DIR})
file(REMOVE ${WORK_DIR}/metrics.json)

execute_process(
  COMMAND ${FOCALDET} eval --annotations ${fixtures}/plain.gt.json
          --detections ${fixtures}/plain.dets.json --json ${WORK_DIR}/metrics.json
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "focaldet eval failed (${rc}): ${err}")
endif()

file(READ ${fixtures}/expected.json expected)
string(JSON summary GET "${expected}" plain summary)
string(JSON n LENGTH "${summary}")
math(EXPR last "${n} - 1")
set(want "")
foreach(i RANGE ${last})
  string(JSON line GET "${summary}" ${i})
  string(APPEND want "${line}\n")
endforeach()
string(LENGTH "${want}" want_len)
string(SUBSTRING "${out}" 0 ${want_len} got_head)
if(NOT got_head STREQUAL want)
  message(FATAL_ERROR "summary differs from pycocotools'.\nwant:\n${want}\ngot:\n${out}")
endif()
if(NOT out MATCHES "\nRBC +[0-9.]+ +[0-9.]+\n")
  message(FATAL_ERROR "no per-category row for RBC in:\n${out}")
endif()

file(READ ${WORK_DIR}/metrics.json metrics)
foreach(key AP AP50 AP75 APs APm APl AR1 AR10 AR100 ARs ARm ARl)
  string(JSON v ERROR_VARIABLE e GET "${metrics}" ${key})
  if(e)
    message(FATAL_ERROR "metrics json lacks ${key}: ${metrics}")
  endif()
endforeach()
foreach(id 1 2 3)
  string(JSON v ERROR_VARIABLE e GET "${metrics}" AP_per_category ${id})
  if(e)
    message(FATAL_ERROR "metrics json lacks AP_per_category.${id}: ${metrics}")
  endif()
endforeach()

file(WRITE ${WORK_DIR}/bad.json
     "[{\"image_id\": 1, \"category_id\": 1, \"bbox\": [0, 0, 5, 5], \"score\": 0.5},\n"
     " {\"image_id\": 1, \"category_id\": 1, \"bbox\": [0, 0, 5], \"score\": 0.5}]\n")
execute_process(
  COMMAND ${FOCALDET} eval --annotations ${fixtures}/plain.gt.json
          --detections ${WORK_DIR}/bad.json
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 2 OR NOT "${out}${err}" MATCHES "detection 1")
  message(FATAL_ERROR "malformed results: want exit 2 naming detection 1, got ${rc}: ${out}${err}")
endif()

# Ground truth that pycocotools evaluates but training's reader refuses (absolute and '..'
# file_name, no width/height, iscrowd 2), and detections of categories not in it: evaluated,
# with one note each on stderr of what was left out.
file(WRITE ${WORK_DIR}/lenient.gt.json
     "{\"images\": [{\"id\": 1, \"file_name\": \"/abs/a.jpg\", \"width\": 640, \"height\": 480},\n"
     "  {\"id\": 2, \"file_name\": \"../b.jpg\"}, {\"id\": 3, \"width\": 3e9}],\n"
     " \"categories\": [{\"id\": 1, \"name\": \"cell\"}],\n"
     " \"annotations\": [{\"id\": 1, \"image_id\": 1, \"category_id\": 1, \"bbox\": [0, 0, 10, 10]},\n"
     "  {\"id\": 2, \"image_id\": 2, \"category_id\": 1, \"bbox\": [0, 0, 10, 10], \"iscrowd\": 2},\n"
     "  {\"id\": 3, \"image_id\": 8, \"category_id\": 1, \"bbox\": [0, 0, 10, 10]}]}\n")
file(WRITE ${WORK_DIR}/lenient.dets.json
     "[{\"image_id\": 1, \"category_id\": 1, \"bbox\": [0, 0, 10, 10], \"score\": 0.9},\n"
     " {\"image_id\": 2, \"category_id\": 1, \"bbox\": [0, 0, 10, 10], \"score\": 0.95},\n"
     " {\"image_id\": 1, \"category_id\": 5, \"bbox\": [0, 0, 10, 10], \"score\": 0.8},\n"
     " {\"image_id\": 3, \"category_id\": 6, \"bbox\": [0, 0, 10, 10], \"score\": 0.8}]\n")
execute_process(
  COMMAND ${FOCALDET} eval --annotations ${WORK_DIR}/lenient.gt.json
          --detections ${WORK_DIR}/lenient.dets.json
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "lenient ground truth refused (${rc}): ${out}${err}")
endif()
# The crowd region (iscrowd 2) absorbs the detection on image 2: AP 1.
if(NOT out MATCHES "area=   all \\| maxDets=100 \\] = 1\\.000")
  message(FATAL_ERROR "lenient ground truth: want AP 1.000, got:\n${out}")
endif()
if(NOT err MATCHES "2 detections of categories not in the ground truth left out \\(pycocotools"
   OR NOT err MATCHES "1 ground truth annotations")
  message(FATAL_ERROR "lenient ground truth: notes missing from stderr:\n${err}")
endif()

# --json never replaces what is not a regular file, nor one of the command's own inputs.
set(gt_copy ${WORK_DIR}/gt_copy.json)
file(COPY_FILE ${fixtures}/plain.gt.json ${gt_copy})
file(SHA256 ${gt_copy} gt_hash)
file(REMOVE ${WORK_DIR}/gt_link.json ${WORK_DIR}/gt_hard.json ${WORK_DIR}/fifo)
file(CREATE_LINK ${gt_copy} ${WORK_DIR}/gt_link.json SYMBOLIC)
file(CREATE_LINK ${gt_copy} ${WORK_DIR}/gt_hard.json)
execute_process(COMMAND mkfifo ${WORK_DIR}/fifo RESULT_VARIABLE mkfifo_rc)
set(targets ${gt_copy} ${WORK_DIR}/gt_hard.json ${WORK_DIR}/gt_link.json)
if(EXISTS /dev/null)
  list(APPEND targets /dev/null)  # a device: rename would replace it for every program
endif()
if(mkfifo_rc EQUAL 0)
  list(APPEND targets ${WORK_DIR}/fifo)
else()
  message(FATAL_ERROR "mkfifo failed: cannot test --json on a FIFO")
endif()
foreach(target ${targets})
  execute_process(
    COMMAND ${FOCALDET} eval --annotations ${gt_copy} --detections ${fixtures}/plain.dets.json
            --json ${target}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
  if(NOT rc EQUAL 2 OR NOT err MATCHES "refusing")
    message(FATAL_ERROR "--json ${target}: want exit 2 and a refusal, got ${rc}: ${err}")
  endif()
  file(SHA256 ${gt_copy} hash_after)
  if(NOT hash_after STREQUAL gt_hash)
    message(FATAL_ERROR "--json ${target} changed the ground truth")
  endif()
endforeach()
if(NOT IS_SYMLINK ${WORK_DIR}/gt_link.json)
  message(FATAL_ERROR "--json replaced the symbolic link")
endif()
execute_process(COMMAND test -p ${WORK_DIR}/fifo RESULT_VARIABLE still_fifo)
if(NOT still_fifo EQUAL 0)
  message(FATAL_ERROR "--json replaced the FIFO")
endif()

# --json - writes the json alone to stdout (the report to stderr), not a file named "-".
file(REMOVE ${WORK_DIR}/-)
execute_process(
  COMMAND ${FOCALDET} eval --annotations ${fixtures}/plain.gt.json
          --detections ${fixtures}/plain.dets.json --json -
  WORKING_DIRECTORY ${WORK_DIR}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(JSON ap ERROR_VARIABLE json_error GET "${out}" AP)
if(NOT rc EQUAL 0 OR json_error OR EXISTS ${WORK_DIR}/-)
  message(FATAL_ERROR "--json -: want the json on stdout, got ${rc}: ${out}\n${err}")
endif()
if(NOT err MATCHES "Average Precision")
  message(FATAL_ERROR "--json -: the report should go to stderr, got: ${err}")
endif()
