using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Backprop.Kernels;

/// <summary>
/// Copies and clears of short runs (a packed panel's 32 floats, an unrolled plane of 196, the padding rows of a shifted
/// plane), inlined with the widest vectors the machine has (not capped by `--isa`, which picks the matrix kernels). The
/// runtime's Memmove and Clear are calls that move 16 bytes at a time for short runs: in mnist-cnn's training step (W6),
/// where im2col and GEMM packing make thousands of such copies per sample, they took 10% of the time.
/// </summary>
internal static class ShortSpans
{
    /// <summary>dst[..src.Length] = src; the two must not overlap.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Copy<T>(ReadOnlySpan<T> src, Span<T> dst) where T : unmanaged
    {
        if ((uint)src.Length > (uint)dst.Length) throw new ArgumentException("copy: destination too short");
        Copy(ref Unsafe.As<T, byte>(ref MemoryMarshal.GetReference(src)), ref Unsafe.As<T, byte>(ref MemoryMarshal.GetReference(dst)),
            (nuint)src.Length * (nuint)Unsafe.SizeOf<T>());
    }

    /// <summary>dst[..] = 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Clear<T>(Span<T> dst) where T : unmanaged =>
        Clear(ref Unsafe.As<T, byte>(ref MemoryMarshal.GetReference(dst)), (nuint)dst.Length * (nuint)Unsafe.SizeOf<T>());

    // Whole vectors, then one more ending at the last byte: it rewrites a few bytes with the same values, so src and dst
    // must not overlap.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Copy(ref byte s, ref byte d, nuint n)
    {
        if (Vector512.IsHardwareAccelerated && n >= 64)
        {
            nuint i = 0;
            for (; i + 64 <= n; i += 64) Vector512.LoadUnsafe(ref s, i).StoreUnsafe(ref d, i);
            if (i < n) Vector512.LoadUnsafe(ref s, n - 64).StoreUnsafe(ref d, n - 64);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 32)
        {
            nuint i = 0;
            for (; i + 32 <= n; i += 32) Vector256.LoadUnsafe(ref s, i).StoreUnsafe(ref d, i);
            if (i < n) Vector256.LoadUnsafe(ref s, n - 32).StoreUnsafe(ref d, n - 32);
        }
        else if (Vector128.IsHardwareAccelerated && n >= 16)
        {
            nuint i = 0;
            for (; i + 16 <= n; i += 16) Vector128.LoadUnsafe(ref s, i).StoreUnsafe(ref d, i);
            if (i < n) Vector128.LoadUnsafe(ref s, n - 16).StoreUnsafe(ref d, n - 16);
        }
        else
        {
            nuint i = 0;
            for (; i + 8 <= n; i += 8) Unsafe.WriteUnaligned(ref Unsafe.Add(ref d, i), Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref s, i)));
            for (; i < n; i++) Unsafe.Add(ref d, i) = Unsafe.Add(ref s, i);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Clear(ref byte d, nuint n)
    {
        if (Vector512.IsHardwareAccelerated && n >= 64)
        {
            nuint i = 0;
            for (; i + 64 <= n; i += 64) Vector512<byte>.Zero.StoreUnsafe(ref d, i);
            if (i < n) Vector512<byte>.Zero.StoreUnsafe(ref d, n - 64);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 32)
        {
            nuint i = 0;
            for (; i + 32 <= n; i += 32) Vector256<byte>.Zero.StoreUnsafe(ref d, i);
            if (i < n) Vector256<byte>.Zero.StoreUnsafe(ref d, n - 32);
        }
        else if (Vector128.IsHardwareAccelerated && n >= 16)
        {
            nuint i = 0;
            for (; i + 16 <= n; i += 16) Vector128<byte>.Zero.StoreUnsafe(ref d, i);
            if (i < n) Vector128<byte>.Zero.StoreUnsafe(ref d, n - 16);
        }
        else
        {
            nuint i = 0;
            for (; i + 8 <= n; i += 8) Unsafe.WriteUnaligned(ref Unsafe.Add(ref d, i), 0UL);
            for (; i < n; i++) Unsafe.Add(ref d, i) = 0;
        }
    }
}
