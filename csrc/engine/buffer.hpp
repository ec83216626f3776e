// Buffer: a reference-counted block of bytes. Batch outputs live in one Buffer each; every
// response holds a reference to the rows it owns, so outputs reach Python without a copy and
// the memory is freed when the last response (array) dies. A Buffer either allocates its
// bytes or adopts memory a native backend produced (an ONNX Runtime output tensor), which
// it hands back through the backend's release function instead of copying it.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <utility>

namespace ir {

class Buffer {
 public:
  static std::shared_ptr<Buffer> Allocate(size_t bytes) {
    // 64-byte alignment: cache lines and any SIMD load in a backend.
    size_t rounded = ((bytes == 0 ? 1 : bytes) + 63) / 64 * 64;
    void* data = std::aligned_alloc(64, rounded);
    if (data == nullptr) throw std::bad_alloc();
    return std::shared_ptr<Buffer>(new Buffer(data, bytes, nullptr, nullptr));
  }

  // Frees adopted memory: release(owner) runs once, when the last reference goes.
  using Release = void (*)(void* owner);

  // Wraps `data` (`bytes` long, kept alive by `owner`) without copying it. Takes ownership
  // of `owner` even when it throws.
  static std::shared_ptr<Buffer> Adopt(void* data, size_t bytes, Release release, void* owner) {
    std::unique_ptr<Buffer> buffer;
    try {
      buffer.reset(new Buffer(data, bytes, release, owner));
    } catch (...) {
      release(owner);
      throw;
    }
    return std::shared_ptr<Buffer>(std::move(buffer));
  }

  ~Buffer() {
    if (release_ != nullptr) release_(owner_);
    else std::free(data_);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  [[nodiscard]] uint8_t* data() const { return static_cast<uint8_t*>(data_); }
  [[nodiscard]] size_t size() const { return size_; }

 private:
  Buffer(void* data, size_t size, Release release, void* owner) : data_(data), size_(size), release_(release), owner_(owner) {}
  void* data_;
  size_t size_;
  Release release_;
  void* owner_;
};

}  // namespace ir
