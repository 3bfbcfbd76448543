using System.Runtime.InteropServices;

namespace Backprop.Serialization;

/// <summary>
/// Writes a file so that a reader — or a process killed at any moment — sees either the previous content or the new,
/// never a mix or a truncation: the bytes go to a uniquely named temporary file in the same folder, are flushed to
/// the disk (fsync), the temporary replaces the target by an atomic rename, and the folder entry is flushed too. A
/// failure deletes the temporary file; a process killed mid-write cannot, so its temporary (named after its process
/// id) is removed by the next write into that folder, or by <see cref="RemoveStale"/>.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> from <paramref name="write"/>, atomically and durably.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        RemoveStale(dir);
        // Unique per call, not just per process: two threads saving to one path must not share a temporary.
        string tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}-{Guid.NewGuid():N}.tmp");
        try
        {
            using (var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(f);
                f.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
            FlushDirectory(dir);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>Writes <paramref name="text"/> as UTF-8, atomically and durably.</summary>
    public static void WriteAllText(string path, string text) =>
        Write(path, s => { var bytes = System.Text.Encoding.UTF8.GetBytes(text); s.Write(bytes); });

    /// <summary>Deletes the temporaries that writers killed mid-write left in <paramref name="dir"/> (their process is gone); returns how many.</summary>
    public static int RemoveStale(string dir)
    {
        int removed = 0;
        if (!Directory.Exists(dir)) return 0;
        foreach (var file in Directory.EnumerateFiles(dir, ".*.tmp"))
        {
            var name = Path.GetFileName(file);
            int dash = name.LastIndexOf('-'), dot = name.LastIndexOf('.', dash < 0 ? 0 : dash);
            if (dash < 0 || dot < 0 || !int.TryParse(name.AsSpan(dot + 1, dash - dot - 1), out int pid) || IsAlive(pid)) continue;
            try { File.Delete(file); removed++; } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        return removed;
    }

    static bool IsAlive(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try { using var p = System.Diagnostics.Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }   // no such process
        catch (InvalidOperationException) { return false; }
    }

    // The rename lives in the folder's entry: on POSIX it is durable only once the folder itself is fsynced.
    static void FlushDirectory(string dir)
    {
        if (OperatingSystem.IsWindows()) return;   // NTFS journals the rename; there is no folder handle to flush
        try
        {
            using var handle = File.OpenHandle(dir, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, FileOptions.None);
            RandomAccess.FlushToDisk(handle);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException or PlatformNotSupportedException or ExternalException)
        {
            // Some file systems refuse to open or flush a folder; the file's own content is already on disk.
        }
    }
}
