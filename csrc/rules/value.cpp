#include "value.hpp"

namespace ir::rules {

SymbolTable::SymbolTable() : slots_(64, 0) {}

uint64_t SymbolTable::hash_of(std::string_view text) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a: strings here are short
  for (char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

int64_t SymbolTable::probe(std::string_view text, uint64_t h, uint32_t* slot) const {
  const size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const uint32_t s = slots_[i];
    if (s == 0) {
      *slot = static_cast<uint32_t>(i);
      return -1;
    }
    const Entry& e = entries_[s - 1];
    if (e.hash == h && e.length == text.size() && text.compare(0, text.size(), chars_.data() + e.offset, e.length) == 0) {
      *slot = static_cast<uint32_t>(i);
      return s - 1;
    }
  }
}

int64_t SymbolTable::find(std::string_view text) const {
  uint32_t slot = 0;
  return probe(text, hash_of(text), &slot);
}

uint32_t SymbolTable::intern(std::string_view text) {
  const uint64_t h = hash_of(text);
  uint32_t slot = 0;
  const int64_t found = probe(text, h, &slot);
  if (found >= 0) return static_cast<uint32_t>(found);
  if ((entries_.size() + 1) * 2 > slots_.size()) {
    grow();
    probe(text, h, &slot);
  }
  const auto id = static_cast<uint32_t>(entries_.size());
  entries_.push_back(Entry{static_cast<uint32_t>(chars_.size()), static_cast<uint32_t>(text.size()), h, slot});
  chars_.insert(chars_.end(), text.begin(), text.end());
  slots_[slot] = id + 1;
  return id;
}

void SymbolTable::grow() {
  // Re-inserting in id order keeps every static entry's probe run free of dynamic entries,
  // which is what lets reset_dynamic() just empty their slots.
  slots_.assign(slots_.size() * 2, 0);
  const size_t mask = slots_.size() - 1;
  for (uint32_t id = 0; id < entries_.size(); ++id) {
    size_t i = entries_[id].hash & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = id + 1;
    entries_[id].slot = static_cast<uint32_t>(i);
  }
}

void SymbolTable::reset_dynamic() {
  for (size_t id = static_count_; id < entries_.size(); ++id) slots_[entries_[id].slot] = 0;
  entries_.resize(static_count_);
  chars_.resize(static_chars_);
}

}  // namespace ir::rules
