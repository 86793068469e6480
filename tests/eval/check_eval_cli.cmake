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
