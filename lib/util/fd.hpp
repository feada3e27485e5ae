// File descriptors as owned values, and the hygiene a child process needs before exec.
#pragma once

#include <unistd.h>

#include <utility>

namespace workq {

// Owns one file descriptor and closes it when destroyed.
class UniqueFd {
  public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) reset(std::exchange(other.fd_, -1));
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    int release() { return std::exchange(fd_, -1); }
    void reset(int fd = -1) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

  private:
    int fd_ = -1;
};

// Closes every descriptor numbered `first` and above (in a child, before exec). Async-signal-safe.
void close_fds_from(int first);

// Empties the signal mask and puts every signal's disposition back to its default, so a worker
// started under nohup or with signals blocked does not pass that on. Async-signal-safe.
void reset_signals_for_exec();

// A close-on-exec pipe: {read end, write end}. Throws Error when the system refuses.
std::pair<UniqueFd, UniqueFd> make_pipe();

// Sets O_NONBLOCK / FD_CLOEXEC on a descriptor; returns false on failure.
bool set_nonblocking(int fd);
bool set_cloexec(int fd);

}  // namespace workq
