# Turns the file IN into a C source OUT defining mapq_functions_lua[] (NUL
# terminated) and mapq_functions_lua_len.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
file(WRITE ${OUT} "/* Generated from mapq_functions.lua; do not edit. */\n"
     "#include <stddef.h>\n"
     "const char mapq_functions_lua[] = {${bytes}0x00};\n"
     "const size_t mapq_functions_lua_len = ${len};\n")
