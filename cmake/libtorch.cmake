# LibTorch: the C++ library inside PyPI's torch wheel, as the interface target torl_libtorch.
#
# tools/setup installs the pinned wheel into .venv/ (tools/python-requirements.txt) and the build finds
# it there. Any other torch 2.x package or LibTorch archive (a GPU machine's pip torch, say) is used with
#   -DTORL_TORCH_ROOT=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
# (the folder holding include/ and lib/). Torch's own CMake package is not used: for the wheel, which is
# built with CUDA, it insists on a CUDA toolkit even for a CPU build, and it links the CUDA libraries
# into every binary. Here the CPU build links libtorch_cpu and libc10 only (a process starts without
# loading cuDNN, cuBLAS, NCCL); TORL_WITH_CUDA adds libtorch_cuda and libc10_cuda and the toolkit's
# headers; TORL_WITH_NCCL adds c10d's NCCL process group.

if(NOT TORL_TORCH_ROOT)
  file(GLOB venv_torch LIST_DIRECTORIES true "${PROJECT_SOURCE_DIR}/.venv/lib/python3*/site-packages/torch")
  if(venv_torch)
    list(GET venv_torch 0 venv_torch)
  endif()
endif()
set(TORL_TORCH_ROOT "${venv_torch}" CACHE PATH "LibTorch: a torch package folder or archive (include/, lib/)")
set(version_header "${TORL_TORCH_ROOT}/include/torch/headeronly/version.h")
if(NOT EXISTS "${version_header}" OR NOT EXISTS "${TORL_TORCH_ROOT}/lib/libtorch_cpu.so")
  message(FATAL_ERROR "LibTorch 2.x not found at TORL_TORCH_ROOT='${TORL_TORCH_ROOT}' (no "
    "include/torch/headeronly/version.h or lib/libtorch_cpu.so there). Run tools/setup, which installs "
    "torch into .venv/, or pass -DTORL_TORCH_ROOT=DIR, the folder of a torch 2.x package "
    "(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))').")
endif()
file(STRINGS "${version_header}" version_lines REGEX "#define TORCH_VERSION_(MAJOR|MINOR|PATCH) ")
string(REGEX REPLACE ".*MAJOR ([0-9]+).*MINOR ([0-9]+).*PATCH ([0-9]+).*" "\\1.\\2.\\3" TORL_TORCH_VERSION
       "${version_lines}")

add_library(torl_libtorch INTERFACE)
target_include_directories(torl_libtorch SYSTEM INTERFACE
  "${TORL_TORCH_ROOT}/include" "${TORL_TORCH_ROOT}/include/torch/csrc/api/include")
# Gloo (c10d's CPU process group) is compiled into libtorch_cpu; the wheel lacks Gloo's headers, which
# Debian's libgloo-dev provides (ProcessGroupGloo.hpp holds Gloo types only behind pointers).
target_compile_definitions(torl_libtorch INTERFACE USE_C10D_GLOO)
set(torch_libs torch_cpu c10)

if(TORL_WITH_CUDA)
  if(NOT EXISTS "${TORL_TORCH_ROOT}/lib/libtorch_cuda.so")
    message(FATAL_ERROR "TORL_WITH_CUDA: '${TORL_TORCH_ROOT}' is a CPU-only LibTorch (no lib/libtorch_cuda.so)")
  endif()
  # The headers c10/cuda and c10d's NCCL group include (cuda_runtime_api.h, nccl.h, ...): the CUDA
  # toolkit's, else those of the wheel's nvidia-* packages (a GPU machine with pip torch and no toolkit).
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND)
    set(cuda_includes ${CUDAToolkit_INCLUDE_DIRS})
  else()
    file(GLOB cuda_includes LIST_DIRECTORIES true "${TORL_TORCH_ROOT}/../nvidia/*/include")
  endif()
  if(NOT cuda_includes)
    message(FATAL_ERROR "TORL_WITH_CUDA: no CUDA headers: neither a CUDA toolkit (nvcc on PATH, or "
      "CUDAToolkit_ROOT) nor the nvidia-* packages beside '${TORL_TORCH_ROOT}'")
  endif()
  target_include_directories(torl_libtorch SYSTEM INTERFACE ${cuda_includes})
  target_compile_definitions(torl_libtorch INTERFACE TORL_WITH_CUDA USE_CUDA)
  if(TORL_WITH_NCCL)
    # nccl.h: the toolkit's where NCCL was installed into it, else the wheel's nvidia-nccl package (a GPU
    # machine whose toolkit lacks NCCL).
    find_path(TORL_NCCL_INCLUDE nccl.h HINTS ${cuda_includes} "${TORL_TORCH_ROOT}/../nvidia/nccl/include")
    if(NOT TORL_NCCL_INCLUDE)
      message(FATAL_ERROR "TORL_WITH_NCCL: no nccl.h in the CUDA toolkit or beside '${TORL_TORCH_ROOT}' "
        "(nvidia/nccl/include)")
    endif()
    target_include_directories(torl_libtorch SYSTEM INTERFACE ${TORL_NCCL_INCLUDE})
    target_compile_definitions(torl_libtorch INTERFACE TORL_WITH_NCCL USE_C10D_NCCL)
  endif()
  # Nothing of torl calls into libtorch_cuda by name: it registers the CUDA backend when loaded, so the
  # linker must keep it (Debian's default; some toolchains pass --as-needed).
  list(PREPEND torch_libs "-Wl,--no-as-needed" torch_cuda c10_cuda)
  # The CUDA runtime that c10/cuda's inline code calls (streams, graphs): the one LibTorch loads (the
  # wheel's nvidia-* package), else the toolkit's; one copy of it in the process.
  file(GLOB cudart "${TORL_TORCH_ROOT}/../nvidia/*/lib/libcudart.so.*" "${TORL_TORCH_ROOT}/lib/libcudart*.so*")
  if(cudart)
    list(GET cudart 0 cudart)
    target_link_libraries(torl_libtorch INTERFACE "${cudart}")
  elseif(TARGET CUDA::cudart)
    target_link_libraries(torl_libtorch INTERFACE CUDA::cudart)
  else()
    message(FATAL_ERROR "TORL_WITH_CUDA: no CUDA runtime (libcudart) beside '${TORL_TORCH_ROOT}' or in a toolkit")
  endif()
endif()

foreach(lib IN LISTS torch_libs)
  if(lib MATCHES "^-Wl")
    target_link_libraries(torl_libtorch INTERFACE "${lib}")
  else()
    target_link_libraries(torl_libtorch INTERFACE "${TORL_TORCH_ROOT}/lib/lib${lib}.so")
  endif()
endforeach()
message(STATUS "LibTorch ${TORL_TORCH_VERSION} at ${TORL_TORCH_ROOT} (CUDA: ${TORL_WITH_CUDA} ${cuda_includes}, NCCL: ${TORL_WITH_NCCL})")
