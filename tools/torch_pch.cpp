// Translation unit that builds the shared LibTorch precompiled header (see CMakeLists.txt).
