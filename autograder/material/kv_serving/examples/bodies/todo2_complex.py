# A correct body written differently: each pair (x[..., i], x[..., i + hd/2]) as one complex number, turned by
# multiplying with exp(i * angle).
if x.shape[-1] % 2 != 0 or positions.shape != x.shape[:1] + x.shape[2:3]:
    raise ValueError(f"need an even head size and positions [B, S], got x {tuple(x.shape)}, positions "
                     f"{tuple(positions.shape)}")
half = x.shape[-1] // 2
pairs = torch.complex(x[..., :half].double(), x[..., half:].double())
angles = positions.double()[:, None, :, None] * base ** (-2.0 * torch.arange(half, dtype=torch.float64) / x.shape[-1])
turned = pairs * torch.polar(torch.ones_like(angles), angles)
return torch.cat([turned.real, turned.imag], dim=-1).to(x.dtype)
