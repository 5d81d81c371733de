// Message digests as lowercase hex (OpenSSL EVP): run ids (SHA-1), ETags
// (MD5), results database checksums (SHA-256). Private to the library.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX, kept out of this header

namespace apcloud::detail {

/// An incremental digest. Throws Error when OpenSSL fails (it does not in practice).
class Digest {
public:
    /// `algorithm` is an OpenSSL digest name: "md5", "sha1", "sha256".
    explicit Digest(const char* algorithm);
    ~Digest();
    Digest(const Digest&) = delete;
    Digest& operator=(const Digest&) = delete;
    /// Adds bytes.
    void update(const void* data, std::size_t size);
    void update(std::string_view data) { update(data.data(), data.size()); }
    /// The digest of everything added, as lowercase hex; call once.
    std::string hex();

private:
    evp_md_ctx_st* ctx_;
    std::string algorithm_;
};

/// The digest of `data` as lowercase hex.
std::string hex_digest(const char* algorithm, std::string_view data);

/// Lowercase or uppercase hex as standard base64 (RFC 4648, with padding);
/// "" when `hex` is not whole bytes of hex digits.
std::string hex_to_base64(std::string_view hex);

/// `bytes` as standard base64 (RFC 4648, with padding).
std::string base64(std::string_view bytes);

/// The HMAC of `data` with `key` (RFC 2104; `algorithm` as for Digest) as lowercase hex.
std::string hex_hmac(const char* algorithm, std::string_view key, std::string_view data);

/// Whether `a` equals `b`, in time that depends only on their lengths (for
/// secrets: MACs, tokens, key digests).
bool equal_constant_time(std::string_view a, std::string_view b) noexcept;

/// `bytes` bytes from the system's cryptographic random generator, as lowercase hex.
std::string random_hex(std::size_t bytes);

/// The digest of a file's content as lowercase hex, read in blocks; nullopt
/// when the file does not exist, SystemError for other failures.
std::optional<std::string> file_hex_digest(const char* algorithm, const std::string& path);

}  // namespace apcloud::detail
