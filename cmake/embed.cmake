# Turns the file IN into a C source OUT defining VAR[] (its bytes, NUL
# terminated) and VAR_len (their count, without the NUL). VAR defaults to
# mapq_functions_lua.
if(NOT DEFINED VAR)
    set(VAR mapq_functions_lua)
endif()
get_filename_component(name ${IN} NAME)
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# Bytes above 0x7f (UTF-8 beyond ASCII) do not fit a signed char as such.
string(REGEX REPLACE "0x([89a-f][0-9a-f])," "(char)0x\\1," bytes "${bytes}")
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
file(WRITE ${OUT} "/* Generated from ${name}; do not edit. */\n"
     "#include <stddef.h>\n"
     "const char ${VAR}[] = {${bytes}0x00};\n"
     "const size_t ${VAR}_len = ${len};\n")
