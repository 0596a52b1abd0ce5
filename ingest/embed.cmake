# embed.cmake: writes a C source holding one file's bytes, at build time:
#   cmake -DIN=page.html -DOUT=page_html.c -DSYMBOL=name -DHEADER=x.h -P embed.cmake
# gives `const unsigned char name[]` (NUL-terminated) and `const size_t name_len`.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REPEAT "0x..," 16 line)   # CMake regexes have no {n}
string(REGEX REPLACE "(${line})" "\\1\n" bytes "${bytes}")
get_filename_component(name "${IN}" NAME)
file(WRITE "${OUT}.tmp"
  "/* Generated from ${name} by embed.cmake at build time: do not edit. */\n"
  "#include \"${HEADER}\"\n\n"
  "const unsigned char ${SYMBOL}[] = {\n${bytes}0x00\n};\n"
  "const size_t ${SYMBOL}_len = ${len};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
