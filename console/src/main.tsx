import { lazy, StrictMode, Suspense, type ReactNode } from "react";
import { createRoot } from "react-dom/client";
import { createBrowserRouter, Navigate, RouterProvider, useLocation } from "react-router";
import Layout from "./components/Layout";
import { Loading } from "./components/ui";
import SignIn from "./pages/SignIn";
import { SessionProvider, useSession } from "./session";
import "./styles.css";

// Every page but sign-in is its own chunk, fetched when first visited.
const Dashboard = lazy(() => import("./pages/Dashboard"));
const Campaigns = lazy(() => import("./pages/Campaigns"));
const Composer = lazy(() => import("./pages/Composer"));
const CampaignView = lazy(() => import("./pages/CampaignView"));
const Contacts = lazy(() => import("./pages/Contacts"));
const ContactView = lazy(() => import("./pages/ContactView"));
const Lists = lazy(() => import("./pages/Lists"));
const ListView = lazy(() => import("./pages/ListView"));
const Templates = lazy(() => import("./pages/Templates"));
const TemplateEdit = lazy(() => import("./pages/TemplateEdit"));
const Statistics = lazy(() => import("./pages/Statistics"));
const Settings = lazy(() => import("./pages/Settings"));
const Hooks = lazy(() => import("./pages/Hooks"));
const NotFound = lazy(() => import("./pages/NotFound"));

function RequireSession({ children }: { children: ReactNode }) {
  const { me, loading } = useSession();
  const location = useLocation();
  if (loading) return <Loading what="your session" />;
  if (!me) return <Navigate to="/sign-in" replace state={{ from: location.pathname }} />;
  return <>{children}</>;
}

function page(element: ReactNode) {
  return <Suspense fallback={<Loading what="the page" />}>{element}</Suspense>;
}

const router = createBrowserRouter([
  { path: "/sign-in", element: <SignIn /> },
  {
    element: (
      <RequireSession>
        <Layout />
      </RequireSession>
    ),
    children: [
      { index: true, element: page(<Dashboard />) },
      { path: "campaigns", element: page(<Campaigns />) },
      { path: "campaigns/new", element: page(<Composer />) },
      { path: "campaigns/:id", element: page(<CampaignView />) },
      { path: "campaigns/:id/edit", element: page(<Composer />) },
      { path: "contacts", element: page(<Contacts />) },
      { path: "contacts/:id", element: page(<ContactView />) },
      { path: "lists", element: page(<Lists />) },
      { path: "lists/:id", element: page(<ListView />) },
      { path: "templates", element: page(<Templates />) },
      { path: "templates/new", element: page(<TemplateEdit />) },
      { path: "templates/:id", element: page(<TemplateEdit />) },
      { path: "statistics", element: page(<Statistics />) },
      { path: "settings", element: page(<Settings />) },
      { path: "hooks", element: page(<Hooks />) },
      { path: "*", element: page(<NotFound />) },
    ],
  },
]);

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <SessionProvider>
      <RouterProvider router={router} />
    </SessionProvider>
  </StrictMode>,
);
