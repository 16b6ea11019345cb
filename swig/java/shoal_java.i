/*
 * shoal_java.i - Java typemaps for shoal.i (package io.shoal.jni, class ShoalNative).
 *
 * The generated class is deliberately low level; the public Java API is the
 * hand-written layer in swig/java/src/io/shoal (AutoCloseable ports, loans and
 * samples, ShoalException). Conventions of the low level:
 *  - Every function returns its shoal_result_t as an int; the Java layer turns
 *    a non-zero code into ShoalException (with shoal_last_error_message(),
 *    read on the same thread right after the call).
 *  - Opaque handles are plain Java longs (0 = NULL).
 *  - Out-parameters are holder arrays of length >= 1 (long[] for handles and
 *    uint64_t, int[] for the waitset fd).
 *  - shoal_chunk_payload(chunk) returns a direct java.nio.ByteBuffer over the
 *    chunk's payload (zero-copy; capacity = shoal_chunk_size()).
 *  - Enums are int constants; uint64_t and int64_t are Java long.
 */

%include "enumtypeunsafe.swg"
%javaconst(1);

/* The JNI library: -Dshoal.jni.library=/abs/path/libshoal_jni.so, else
 * System.loadLibrary("shoal_jni") through java.library.path. */
%pragma(java) jniclasscode=%{
  static {
    String path = System.getProperty("shoal.jni.library");
    if (path != null && !path.isEmpty()) {
      System.load(path);
    } else {
      System.loadLibrary("shoal_jni");
    }
  }
%}

/* 64-bit unsigned integers as Java long (not BigInteger). */
%apply long long { uint64_t };
%apply long long { unsigned long long };

/* Results: the code as int. */
%typemap(jni) shoal_result_t "jint"
%typemap(jtype) shoal_result_t "int"
%typemap(jstype) shoal_result_t "int"
%typemap(in) shoal_result_t %{ $1 = (shoal_result_t)$input; %}
%typemap(out) shoal_result_t %{ $result = (jint)$1; %}
%typemap(javain) shoal_result_t "$javainput"
%typemap(javaout) shoal_result_t { return $jnicall; }

/* Handles: long. */
%define SHOAL_HANDLE_TYPEMAPS(TYPE)
%typemap(jni) TYPE *, const TYPE * "jlong"
%typemap(jtype) TYPE *, const TYPE * "long"
%typemap(jstype) TYPE *, const TYPE * "long"
%typemap(in) TYPE *, const TYPE * %{ $1 = ($1_ltype)(intptr_t)$input; %}
%typemap(out) TYPE *, const TYPE * %{ $result = (jlong)(intptr_t)$1; %}
%typemap(javain) TYPE *, const TYPE * "$javainput"
%typemap(javaout) TYPE *, const TYPE * { return $jnicall; }
%enddef

/* Holder arrays for out-parameters. */
%define SHOAL_JAVA_HOLDER(PATTERN, CTYPE, JNITYPE, JAVATYPE, ELEMTYPE, SETREGION, NULLABLE)
%typemap(jni) PATTERN #JNITYPE
%typemap(jtype) PATTERN #JAVATYPE
%typemap(jstype) PATTERN #JAVATYPE
%typemap(javain) PATTERN "$javainput"
%typemap(in) PATTERN (CTYPE value = 0) {
    if (!$input) {
        if (!NULLABLE) {
            SWIG_JavaThrowException(jenv, SWIG_JavaNullPointerException, "out-parameter holder array is null");
            return $null;
        }
        $1 = NULL;
    } else {
        if ((*jenv)->GetArrayLength(jenv, $input) < 1) {
            SWIG_JavaThrowException(jenv, SWIG_JavaIndexOutOfBoundsException, "out-parameter holder array is empty");
            return $null;
        }
        $1 = &value;
    }
}
%typemap(argout) PATTERN {
    if ($input) {
        ELEMTYPE element = (ELEMTYPE)value$argnum;
        (*jenv)->SETREGION(jenv, $input, 0, 1, &element);
    }
}
%enddef

SHOAL_JAVA_HOLDER(SWIGTYPE **SHOAL_OUT_HANDLE, $*1_ltype, jlongArray, long[], jlong, SetLongArrayRegion, 0)
SHOAL_JAVA_HOLDER(uint64_t *SHOAL_OUT_U64, uint64_t, jlongArray, long[], jlong, SetLongArrayRegion, 1)
SHOAL_JAVA_HOLDER(int *SHOAL_OUT_INT, int, jintArray, int[], jint, SetIntArrayRegion, 0)

/* Handles out: the pointer needs a cast through intptr_t. */
%typemap(argout) SWIGTYPE **SHOAL_OUT_HANDLE {
    if ($input) {
        jlong element = (jlong)(intptr_t)value$argnum;
        (*jenv)->SetLongArrayRegion(jenv, $input, 0, 1, &element);
    }
}

/* Info structs: the caller passes a proxy object (new shoal_pool_info_t()). */
%typemap(jni) SWIGTYPE *SHOAL_OUT_STRUCT = SWIGTYPE *;
%typemap(jtype) SWIGTYPE *SHOAL_OUT_STRUCT = SWIGTYPE *;
%typemap(jstype) SWIGTYPE *SHOAL_OUT_STRUCT = SWIGTYPE *;
%typemap(javain) SWIGTYPE *SHOAL_OUT_STRUCT = SWIGTYPE *;
%typemap(in) SWIGTYPE *SHOAL_OUT_STRUCT = SWIGTYPE *;

/* Zero-copy payload as a direct ByteBuffer. */
%typemap(jni) void *shoal_chunk_payload "jobject"
%typemap(jtype) void *shoal_chunk_payload "java.nio.ByteBuffer"
%typemap(jstype) void *shoal_chunk_payload "java.nio.ByteBuffer"
%typemap(javaout) void *shoal_chunk_payload { return $jnicall; }
%typemap(out) void *shoal_chunk_payload {
    if ($1) {
        $result = (*jenv)->NewDirectByteBuffer(jenv, $1, (jlong)shoal_chunk_size(arg1));
    } else {
        SWIG_JavaThrowException(jenv, SWIG_JavaIllegalArgumentException, "chunk has no payload (NULL handle?)");
        $result = NULL;
    }
}

/* shoal_waitset_wait(ws, long[] readyTags, long[] readyCount, timeoutNs):
 * capacity is the array's length. */
%typemap(jni) (uint64_t *ready_tags, size_t capacity) "jlongArray"
%typemap(jtype) (uint64_t *ready_tags, size_t capacity) "long[]"
%typemap(jstype) (uint64_t *ready_tags, size_t capacity) "long[]"
%typemap(javain) (uint64_t *ready_tags, size_t capacity) "$javainput"
%typemap(in) (uint64_t *ready_tags, size_t capacity) {
    if (!$input) {
        SWIG_JavaThrowException(jenv, SWIG_JavaNullPointerException, "readyTags is null");
        return $null;
    }
    $2 = (size_t)(*jenv)->GetArrayLength(jenv, $input);
    $1 = (uint64_t *)(*jenv)->GetLongArrayElements(jenv, $input, NULL);
    if (!$1)
        return $null;
}
%typemap(argout) (uint64_t *ready_tags, size_t capacity) {
    (*jenv)->ReleaseLongArrayElements(jenv, $input, (jlong *)$1, 0);
}
%apply uint64_t *SHOAL_OUT_U64 { size_t *ready_count };
%typemap(in) size_t *ready_count (size_t value = 0) {
    if (!$input || (*jenv)->GetArrayLength(jenv, $input) < 1) {
        SWIG_JavaThrowException(jenv, SWIG_JavaNullPointerException, "readyCount holder array is null or empty");
        return $null;
    }
    $1 = &value;
}
