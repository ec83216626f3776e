// Buffer: a reference-counted block of engine-owned bytes. Batch outputs live in one
// Buffer each; every response holds a reference to the rows it owns, so outputs reach
// Python without a copy and the memory is freed when the last response (array) dies.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

namespace ir {

class Buffer {
 public:
  static std::shared_ptr<Buffer> Allocate(size_t bytes) {
    // 64-byte alignment: cache lines and any SIMD load in a backend.
    size_t rounded = ((bytes == 0 ? 1 : bytes) + 63) / 64 * 64;
    void* data = std::aligned_alloc(64, rounded);
    if (data == nullptr) throw std::bad_alloc();
    return std::shared_ptr<Buffer>(new Buffer(data, bytes));
  }
  ~Buffer() { std::free(data_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  [[nodiscard]] uint8_t* data() const { return static_cast<uint8_t*>(data_); }
  [[nodiscard]] size_t size() const { return size_; }

 private:
  Buffer(void* data, size_t size) : data_(data), size_(size) {}
  void* data_;
  size_t size_;
};

}  // namespace ir
