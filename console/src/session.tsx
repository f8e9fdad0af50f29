// Who is signed in, and what their role lets them do. Controls a role may not use are not
// offered: pages ask `can("manager")` before rendering them.
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from "react";
import { ApiError, call, client } from "./api/client";
import type { Me, Role } from "./api/types";
import { roleAtLeast } from "./roles";

interface SessionValue {
  me: Me | null;
  loading: boolean;
  refresh: () => Promise<void>;
  signOut: () => Promise<void>;
  can: (needed: Role) => boolean;
}

const SessionContext = createContext<SessionValue | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null>(null);
  const [loading, setLoading] = useState(true);

  const refresh = useCallback(async () => {
    try {
      setMe(await call(client.GET("/me")));
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      setMe(null);
    } finally {
      setLoading(false);
    }
  }, []);

  const signOut = useCallback(async () => {
    try {
      await call(client.POST("/auth/logout"));
    } finally {
      setMe(null);
    }
  }, []);

  useEffect(() => {
    void refresh();
    const onSignedOut = () => setMe(null);
    window.addEventListener("clarion:signed-out", onSignedOut);
    return () => window.removeEventListener("clarion:signed-out", onSignedOut);
  }, [refresh]);

  const can = useCallback((needed: Role) => roleAtLeast(me?.role, needed), [me]);
  return (
    <SessionContext.Provider value={{ me, loading, refresh, signOut, can }}>
      {children}
    </SessionContext.Provider>
  );
}

export function useSession(): SessionValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error("useSession outside SessionProvider");
  return value;
}
