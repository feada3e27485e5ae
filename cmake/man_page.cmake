# Builds one man page from its scdoc source (cmake -P): replaces each line
# "%include NAME" with docs/man/include/NAME (scdoc has no includes, and every tool shares the
# connection options), then runs scdoc, and compresses the page as Debian wants it (gzip -9n:
# no name, no timestamp, so the package is reproducible).
# Arguments: -DSCDOC=path -DSOURCE=page.scd -DINCLUDE_DIR=dir -DOUTPUT=page.N (page.N.gz too)
file(READ ${SOURCE} text)
string(REGEX MATCHALL "%include [^\n]+" includes "${text}")
foreach(directive IN LISTS includes)
    string(REPLACE "%include " "" name "${directive}")
    file(READ ${INCLUDE_DIR}/${name} included)
    string(REGEX REPLACE "\n$" "" included "${included}")
    string(REPLACE "${directive}" "${included}" text "${text}")
endforeach()
set(expanded ${OUTPUT}.scd)
file(WRITE ${expanded} "${text}")
execute_process(COMMAND ${SCDOC} INPUT_FILE ${expanded} OUTPUT_FILE ${OUTPUT}
                RESULT_VARIABLE result ERROR_VARIABLE errors)
if(NOT result EQUAL 0)
    file(REMOVE ${OUTPUT})
    message(FATAL_ERROR "scdoc failed on ${SOURCE}: ${errors}")
endif()
# No hyphenation: names, keys and flags (workq-enqueue, redis.url) must not break at a hyphen.
file(READ ${OUTPUT} page)
string(REGEX REPLACE "(\n[.]TH [^\n]*\n)" "\\1.nh\n" page "${page}")
file(WRITE ${OUTPUT} "${page}")
execute_process(COMMAND gzip -9 -n -f -k ${OUTPUT} RESULT_VARIABLE result)
if(NOT result EQUAL 0)
    message(FATAL_ERROR "gzip failed on ${OUTPUT}")
endif()
